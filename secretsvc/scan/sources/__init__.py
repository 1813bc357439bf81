"""secretsvc.scan.sources."""

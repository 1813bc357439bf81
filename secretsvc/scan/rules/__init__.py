"""secretsvc.scan.rules."""

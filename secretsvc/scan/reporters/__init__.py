"""secretsvc.scan.reporters."""

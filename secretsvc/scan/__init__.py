"""secretsvc.scan."""

"""secretsvc.auth."""

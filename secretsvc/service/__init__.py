"""secretsvc.service."""

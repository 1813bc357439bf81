"""secretsvc.crypto."""

"""secretsvc.rpc."""

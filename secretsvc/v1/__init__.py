"""Generated gRPC code for the secretsvc.v1 API (see protos/)."""

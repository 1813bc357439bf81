"""secretsvc: envelope-encrypted secrets over gRPC, a Kubernetes injector, and an image-layer leak detector."""

__version__ = "0.1.0"

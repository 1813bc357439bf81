"""Kubernetes admission webhook and the init/sidecar agent that writes secrets into tmpfs."""

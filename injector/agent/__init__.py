"""The injector's agent."""

"""The local runtime: template.yaml provisioned on an emulated AWS endpoint, handlers in process."""

"""The KSBB gateway: nginx configuration rendered from gateway.toml and the services' OpenAPI documents."""

"""KSBB portal: server-rendered pages for every role, signing in with OpenID Connect on the server."""

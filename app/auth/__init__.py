"""Authentication: passwords, access tokens, and resolving the request's actor."""

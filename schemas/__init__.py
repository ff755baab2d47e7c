"""marshmallow schemas: the API contract, rendered into OpenAPI by flask-smorest."""

"""HTTP layer: routes, middleware and the exception-to-response mapping."""

"""The HTTP plumbing every API shares: middleware, identity, error rendering, SSE, system routes.

FastAPI inspects each route's models as the route is declared, at import: its pydantic v1 check
is made free first (see `web/fastapi_speedups`), before any router module declares a route.
"""

from llm_server.web.fastapi_speedups import skip_pydantic_v1_import

skip_pydantic_v1_import()

"""One router per resource.

FastAPI inspects each route's models as the route is declared, at import: its pydantic v1 check
is made free first (see `api/fastapi_speedups`).
"""

from llm_server.api.fastapi_speedups import skip_pydantic_v1_import

skip_pydantic_v1_import()

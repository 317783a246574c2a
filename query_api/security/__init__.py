"""Who is calling the query API: API keys and JWT bearer tokens, each bound to one tenant and its scopes."""

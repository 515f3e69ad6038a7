from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """DRF's token authentication (one `authtoken_token` lookup joined to its user per
    request), reading `Authorization: Bearer <key>` so the benchmark sends both servers the
    same request."""

    keyword = "Bearer"

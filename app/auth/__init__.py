"""Who may call the API: the shop's services by API key and scope, a shopper by a signed token
for their own data (`app.auth.access`)."""

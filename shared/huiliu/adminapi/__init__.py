"""The admin API's shared foundation: the resolver (OpenAPI validation), error shape, auth, keys.

Routers live with the stage that owns the data (``huiliu.identity.admin_routes`` …) and are mounted
in ``functions/admin/app.py``; see docs/admin.md "How to add a route".
"""

from django.contrib import admin
from django.urls import include, path

from annotation.users.throttle import login_throttled

urlpatterns = [
    # admin's own sign-in, throttled like the others (annotation/users/throttle.py)
    path("admin/login/", login_throttled(admin.site.login)),
    path("admin/", admin.site.urls),
    path("api/", include("annotation.api.urls")),
    path("", include("annotation.web.urls")),
]

# Errors outside DRF's views under /api/ answer in the API's JSON shape, never a page.
handler404 = "annotation.common.exceptions.page_not_found"
handler500 = "annotation.common.exceptions.server_error"

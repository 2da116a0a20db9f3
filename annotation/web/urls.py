from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from annotation.users.throttle import login_throttled

from . import views

urlpatterns = [
    path(
        "login/",
        login_throttled(auth_views.LoginView.as_view(template_name="web/login.html")),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="/login/"), name="logout"),
    path("healthz", views.healthz),
    # The browser app routes on the client; every other path loads it.
    re_path(r"^(?!api/|admin/|static/|ws/).*$", views.app, name="app"),
]

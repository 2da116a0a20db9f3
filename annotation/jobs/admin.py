from django.contrib import admin

from .models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "dataset", "state", "done", "total", "created_at")
    list_filter = ("kind", "state")

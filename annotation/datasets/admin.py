from django.contrib import admin

from .models import Dataset, Image


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "project", "created_at")


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("id", "original_name", "dataset", "width", "height", "format")
    list_filter = ("format",)
    search_fields = ("original_name", "sha256")

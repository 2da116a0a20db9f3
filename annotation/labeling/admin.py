from django.contrib import admin

from .models import Instance, Prompt, Task


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "project", "assignee", "state")
    list_filter = ("state",)


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ("id", "image", "label", "source", "review_state", "area", "version")
    list_filter = ("source", "review_state")
    exclude = ("mask",)  # kilobytes of RLE are no use in a form; edit masks on the canvas
    readonly_fields = ("bbox", "area", "version")  # derived from the mask by the services


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("id", "instance", "seq", "kind", "method", "undone")

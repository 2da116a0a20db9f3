from typing import ClassVar

from django.contrib import admin

from .models import LabelClass, Membership, Project


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


class LabelInline(admin.TabularInline):
    model = LabelClass
    extra = 0


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "created_at")
    inlines: ClassVar[list[type[admin.TabularInline]]] = [LabelInline, MembershipInline]

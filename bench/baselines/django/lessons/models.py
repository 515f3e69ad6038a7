import uuid

from django.conf import settings
from django.db import models


class Lesson(models.Model):
    """A teacher's lesson, its slides as one JSON document (as classcast keeps a revision)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lessons")
    title = models.CharField(max_length=200)
    slides = models.JSONField(default=list)
    version = models.UUIDField(default=uuid.uuid4)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

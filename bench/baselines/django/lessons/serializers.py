from rest_framework import serializers

from .models import Lesson


def _millis(moment):
    return int(moment.timestamp() * 1000)


class LessonSerializer(serializers.ModelSerializer):
    """The fields classcast answers with, times in milliseconds since the epoch as there."""

    version = serializers.CharField()
    created_at = serializers.SerializerMethodField()
    updated_at = serializers.SerializerMethodField()

    class Meta:
        model = Lesson
        fields = ["id", "title", "slides", "version", "created_at", "updated_at"]

    def get_created_at(self, lesson):
        return _millis(lesson.created_at)

    def get_updated_at(self, lesson):
        return _millis(lesson.updated_at)

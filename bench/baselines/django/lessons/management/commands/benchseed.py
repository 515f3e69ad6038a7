import json
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from lessons.models import Lesson


class Command(BaseCommand):
    help = "Creates a teacher, its token and one lesson of the slides read from stdin (JSON); prints `token lesson-id`."

    def handle(self, *args, **options):
        slides = json.load(sys.stdin)
        teacher = get_user_model().objects.create_user("bench", "bench@school.org", "benchmark password")
        token = Token.objects.create(user=teacher)
        lesson = Lesson.objects.create(owner=teacher, title="Benchmark lesson", slides=slides)
        self.stdout.write(f"{token.key} {lesson.id}")

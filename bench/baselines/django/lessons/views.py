from rest_framework import generics
from rest_framework.response import Response

from .models import Lesson
from .serializers import LessonSerializer


class LessonDetail(generics.RetrieveAPIView):
    """`GET /api/lessons/{id}`: the signed-in teacher's lesson, with its `ETag`."""

    serializer_class = LessonSerializer

    def get_queryset(self):
        # The owner check: another teacher's lesson is a 404, exactly like a missing one, as
        # in classcast (one query: the lesson by id and owner).
        return Lesson.objects.filter(owner=self.request.user)

    def retrieve(self, request, *args, **kwargs):
        lesson = self.get_object()
        response = Response(self.get_serializer(lesson).data)
        response["ETag"] = f'"{lesson.version}"'
        return response

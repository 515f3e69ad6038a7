from django.urls import path

from lessons.views import LessonDetail

urlpatterns = [
    path("api/lessons/<uuid:pk>", LessonDetail.as_view()),
]

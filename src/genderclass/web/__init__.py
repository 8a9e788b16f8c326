"""Web app and JSON API: ``genderclass serve`` (FastAPI on uvicorn) over ``GenderClassifier``."""

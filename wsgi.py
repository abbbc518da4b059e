"""WSGI entry point: ``gunicorn wsgi:app``. NANSEN_ENV chooses the configuration."""

from app import create_app

app = create_app()

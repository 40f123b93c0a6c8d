"""The WSGI entry point of the example application."""

from grocker_greeting import greet


def application(environ, start_response):
    body = (greet("web") + "\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

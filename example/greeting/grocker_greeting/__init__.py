"""A dependency of the example application: it makes greetings."""


def greet(name: str) -> str:
    return f"hello, {name}, from grocker-greeting"

"""The example application bundled with Grocker: a WSGI app and a console script."""

from grocker_greeting import greet


def main() -> None:
    print(greet("console"))


if __name__ == "__main__":
    main()

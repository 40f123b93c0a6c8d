"""The example application bundled with Grocker."""


def main() -> None:
    print("hello from grocker-hello 1.0.0")


if __name__ == "__main__":
    main()

from pathlib import Path

APPS = str(Path(__file__).parent / "apps")
EXT = f'<findlib path="{APPS}"/><extension findlib-package="ocsi-ext-asgi"/>'

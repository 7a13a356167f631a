"""A Flask application (WSGI)."""

from flask import Flask, Response, request

app = Flask(__name__)


@app.route("/")
def home():
    return {"path": request.path, "script": request.script_root, "q": request.args.get("q")}


@app.route("/upload", methods=["POST"])
def upload():
    return str(len(request.get_data()))


@app.route("/stream")
def stream():
    return Response((f"line {i}\n" for i in range(5)), mimetype="text/plain")

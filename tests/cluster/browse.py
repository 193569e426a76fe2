# Headless Chromium driven over its DevTools protocol, for pages that draw after load (Bokeh's
# dashboard renders its plots from a websocket, which --dump-dom and --screenshot do not wait
# for). Loads URL, waits until the JavaScript expression WAIT is true (or TIMEOUT seconds pass),
# saves a PNG screenshot and prints the page's title and the final value of REPORT. With FIELD,
# TEXT and BUTTON (CSS selectors), a user's form first: once FIELD is on the page, TEXT is typed
# into it and BUTTON clicked.
# Usage: python browse.py CHROMIUM PROFILE_DIR URL PNG WAIT REPORT [TIMEOUT [FIELD TEXT BUTTON]]
# Needs tornado (distributed's dependency) for the websocket.
import base64
import json
import re
import subprocess
import sys
import time

from tornado.ioloop import IOLoop
from tornado.websocket import websocket_connect

chromium, profile, url, png, wait, report = sys.argv[1:7]
timeout = float(sys.argv[7]) if len(sys.argv) > 7 else 30.0
form = sys.argv[8:11] if len(sys.argv) > 10 else None

browser = subprocess.Popen(
    [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
     "--window-size=1280,900", "--remote-debugging-port=0", "--user-data-dir=" + profile,
     "about:blank"],
    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def devtools_address():
    deadline = time.time() + 30
    for line in browser.stderr:
        m = re.search(r"DevTools listening on (ws://\S+)", line)
        if m:
            return m.group(1)
        if time.time() > deadline:
            break
    sys.exit("browse: Chromium gave no DevTools address")


async def drive(address):
    # The browser's target list, then a page target of its own.
    conn = await websocket_connect(address, max_message_size=64 << 20)
    ids = iter(range(1, 1 << 30))

    async def call(method, session=None, **params):
        n = next(ids)
        msg = {"id": n, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        await conn.write_message(json.dumps(msg))
        while True:
            reply = json.loads(await conn.read_message())
            if reply.get("id") == n:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply["result"]

    target = (await call("Target.createTarget", url="about:blank"))["targetId"]
    session = (await call("Target.attachToTarget", targetId=target, flatten=True))["sessionId"]
    await call("Page.enable", session)
    await call("Page.navigate", session, url=url)

    async def evaluate(expression):
        r = await call("Runtime.evaluate", session, expression=expression, returnByValue=True)
        return r["result"].get("value")

    deadline = time.time() + timeout

    async def until(expression):
        while time.time() < deadline:
            try:
                if await evaluate(expression):
                    return True
            except RuntimeError:
                pass
            await __import__("asyncio").sleep(0.25)
        return False

    if form:
        field, _, button = (json.dumps(x) for x in form)
        if await until("document.querySelector(%s) !== null" % field):
            await evaluate("document.querySelector(%s).focus()" % field)
            await call("Input.insertText", session, text=form[1])
            await until("!document.querySelector(%s).disabled" % button)
            await evaluate("document.querySelector(%s).click()" % button)
    await until(wait)
    shot = await call("Page.captureScreenshot", session, format="png")
    with open(png, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    print(json.dumps({"title": await evaluate("document.title"),
                      "report": await evaluate(report)}))
    conn.close()


try:
    IOLoop.current().run_sync(lambda: drive(devtools_address()), timeout=timeout + 60)
finally:
    browser.kill()
    browser.wait()

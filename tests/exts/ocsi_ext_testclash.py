"""Claims <hello>, which ocsi-ext-testhello owns too."""
import ocsi


@ocsi.hookimpl
def ocsi_elements():
    return {"hello": lambda el, ctx: ocsi.FunctionStep(None)}

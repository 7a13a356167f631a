"""A FastAPI application: path and query parameters, a JSON body, a dependency."""

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI()


class Item(BaseModel):
    name: str
    price: float


def token(x_token: str | None = None) -> str:
    return x_token or "anonymous"


@app.get("/items/{item_id}")
async def read(item_id: int, q: str | None = None, who: str = Depends(token)):
    if item_id == 0:
        raise HTTPException(status_code=418, detail="no item zero")
    return {"item_id": item_id, "q": q, "who": who}


@app.post("/items")
async def create(item: Item):
    return {"name": item.name, "price_with_tax": round(item.price * 1.2, 2)}

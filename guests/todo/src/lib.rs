//! A to-do list over SQL, with a hit counter in the key-value store. The same `.wasm` runs on
//! SQLite and on PostgreSQL: the statements use the SQL both share and `$N` placeholders.
//!
//! | request | answer |
//! |---|---|
//! | `POST /todos` `{"title": ...}` | `201` and the new to-do |
//! | `GET /todos` | `200` and every to-do, by id |
//! | `GET /todos/{id}` | `200` and the to-do, or `404` |
//! | `PATCH /todos/{id}` `{"title"?: ..., "done"?: ...}` | `200` and the to-do, or `404` |
//! | `DELETE /todos/{id}` | `204`, or `404` |
//! | `GET /hits` | `200` and `{"hits": N}`: requests served so far |
//! | `PUT /labels` `{"name": "text", ...}` | `204`: the labels set in the key-value store at once |
//! | `GET /labels/{a,b,...}` | `200` and the labels' texts (`null` where unset), read at once |
//!
//! Every response carries the hit count in `x-hits`. Ids come from an atomic counter in the
//! key-value store.

use mixio::http::{Request, Response};
use mixio::kv::Store;
use mixio::sql::{Connection, Row, params};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct Todo {
    id: i64,
    title: String,
    done: bool,
}

impl Todo {
    fn from_row(row: Row<'_>) -> Result<Todo, mixio::Error> {
        Ok(Todo { id: row.get("id")?, title: row.get("title")?, done: row.get("done")? })
    }
}

#[derive(Deserialize)]
struct NewTodo {
    title: String,
}

#[derive(Deserialize)]
struct Change {
    title: Option<String>,
    done: Option<bool>,
}

#[mixio::handler]
fn handle(req: Request) -> Result<Response, mixio::Error> {
    let kv = Store::open("default")?;
    let hits = kv.increment("hits", 1)?;
    let db = Connection::open("default")?;
    db.execute(
        "CREATE TABLE IF NOT EXISTS todos (id BIGINT PRIMARY KEY, title TEXT NOT NULL, done BOOLEAN NOT NULL)",
        &[],
    )?;

    let segments: Vec<&str> = req.path().trim_matches('/').split('/').collect();
    let response = match (req.method(), segments.as_slice()) {
        ("GET", ["hits"]) => Response::json(&serde_json::json!({ "hits": hits })),
        ("PUT", ["labels"]) => {
            let labels: std::collections::BTreeMap<String, String> = match req.json() {
                Ok(labels) => labels,
                Err(e) => return Ok(Response::error(400, &e)),
            };
            let entries: Vec<_> = labels.iter().map(|(name, text)| (format!("label:{name}"), text)).collect();
            kv.set_many(&entries)?;
            Response::new(204)
        }
        ("GET", ["labels", names]) => {
            let keys: Vec<String> = names.split(',').map(|name| format!("label:{name}")).collect();
            let texts: Vec<Option<String>> = kv
                .get_many(&keys)?
                .into_iter()
                .map(|v| v.map(|v| String::from_utf8_lossy(&v).into_owned()))
                .collect();
            Response::json(&texts)
        }
        ("GET", ["todos"]) => {
            let rows = db.query("SELECT id, title, done FROM todos ORDER BY id", &[])?;
            let todos = rows.iter().map(Todo::from_row).collect::<Result<Vec<_>, _>>()?;
            Response::json(&todos)
        }
        ("POST", ["todos"]) => {
            let new: NewTodo = match req.json() {
                Ok(new) => new,
                Err(e) => return Ok(Response::error(400, &e)),
            };
            let id = kv.increment("next-id", 1)?;
            db.execute(
                "INSERT INTO todos (id, title, done) VALUES ($1, $2, $3)",
                params![id, new.title.as_str(), false],
            )?;
            mixio::log::info!("todo {id} created");
            Response::json(&Todo { id, title: new.title, done: false }).with_status(201)
        }
        (method, ["todos", id]) => {
            let Ok(id) = id.parse::<i64>() else { return Ok(Response::error(404, "no such todo")) };
            match method {
                "GET" => match find(&db, id)? {
                    Some(todo) => Response::json(&todo),
                    None => Response::error(404, "no such todo"),
                },
                "PATCH" => {
                    let change: Change = match req.json() {
                        Ok(change) => change,
                        Err(e) => return Ok(Response::error(400, &e)),
                    };
                    let updated = db.transaction(|tx| {
                        tx.execute(
                            "UPDATE todos SET title = COALESCE($1, title), done = COALESCE($2, done) WHERE id = $3",
                            params![change.title, change.done, id],
                        )?;
                        find(tx, id)
                    })?;
                    match updated {
                        Some(todo) => Response::json(&todo),
                        None => Response::error(404, "no such todo"),
                    }
                }
                "DELETE" => match db.execute("DELETE FROM todos WHERE id = $1", params![id])? {
                    0 => Response::error(404, "no such todo"),
                    _ => Response::new(204),
                },
                _ => Response::error(405, "method not allowed"),
            }
        }
        _ => Response::error(404, "not found"),
    };
    Ok(response.with_header("x-hits", hits.to_string()))
}

fn find(db: &Connection, id: i64) -> Result<Option<Todo>, mixio::Error> {
    let rows = db.query("SELECT id, title, done FROM todos WHERE id = $1", params![id])?;
    rows.first().map(Todo::from_row).transpose()
}

#![allow(unused_imports)]
use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest, Result};

#[derive(Default)]
struct MyDb;

#[database_plugin(name = "mydb")]
fn helper() {}

fn main() {}

#![allow(unused_imports)]
use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest, Result};


#[database_plugin(name = "mydb")]
struct MyDb;

fn main() {}

//! The committed schemas are the ones generated from the types.

use connector_tests::root;

#[test]
fn committed_schemas_are_up_to_date() {
    for (file, schema) in [
        (
            "schemas/connector.schema.json",
            connector_spec::connector_schema(),
        ),
        (
            "schemas/instance.schema.json",
            connector_spec::instance_schema(),
        ),
    ] {
        let committed = std::fs::read_to_string(root().join(file)).unwrap();
        assert!(
            committed == connector_spec::schema_text(&schema),
            "{file} is out of date: run `cargo run -p connector-runtime -- schema connector -o schemas/connector.schema.json` \
             (and `schema instance -o schemas/instance.schema.json`)"
        );
    }
}

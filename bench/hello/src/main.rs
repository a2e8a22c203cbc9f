//! The hello-world `lambda_http` function (cargo-lambda's template), the baseline every figure
//! in BENCHMARKS.md is compared with: same release profile, same runtime emulator, same run.

use lambda_http::{Body, Error, Request, Response, run, service_fn, tracing};

async fn function_handler(_event: Request) -> Result<Response<Body>, Error> {
    let resp = Response::builder()
        .status(200)
        .header("content-type", "text/html")
        .body("Hello AWS Lambda HTTP request".into())
        .map_err(Box::new)?;
    Ok(resp)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    run(service_fn(function_handler)).await
}

//! What running jobs costs on AWS at list prices: the usage a job causes, priced. Used to
//! report cost per job kind (`docs/BENCHMARKS.md`, from the usage counted on the emulator).

/// What one job (or any piece of work) uses of each priced AWS unit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AwsUsage {
    /// API Gateway HTTP API requests.
    pub api_requests: f64,
    pub lambda_requests: f64,
    /// Lambda duration × memory, arm64.
    pub lambda_gb_seconds: f64,
    /// Step Functions (standard workflows) state transitions.
    pub state_transitions: f64,
    /// DynamoDB on-demand write request units (each index copy written counts).
    pub dynamodb_write_units: f64,
    pub dynamodb_read_units: f64,
    pub s3_puts: f64,
    pub s3_gets: f64,
    /// SQS requests (a message is sent, received and deleted).
    pub sqs_requests: f64,
}

/// Prices in US dollars per unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AwsPrices {
    pub api_request: f64,
    pub lambda_request: f64,
    pub lambda_gb_second: f64,
    pub state_transition: f64,
    pub dynamodb_write_unit: f64,
    pub dynamodb_read_unit: f64,
    pub s3_put: f64,
    pub s3_get: f64,
    pub sqs_request: f64,
}

impl AwsPrices {
    /// us-east-1 list prices, on-demand, without free tiers or volume discounts: HTTP API
    /// $1.00/M requests; Lambda $0.20/M requests and $0.0000133334 per GB-s (arm64); Step
    /// Functions standard $0.025 per 1,000 transitions; DynamoDB on-demand $0.625/M write and
    /// $0.125/M read units; S3 Standard $0.005 per 1,000 PUTs and $0.0004 per 1,000 GETs; SQS
    /// standard $0.40/M requests.
    pub const LIST: AwsPrices = AwsPrices {
        api_request: 1.00e-6,
        lambda_request: 0.20e-6,
        lambda_gb_second: 0.000_013_333_4,
        state_transition: 0.025e-3,
        dynamodb_write_unit: 0.625e-6,
        dynamodb_read_unit: 0.125e-6,
        s3_put: 0.005e-3,
        s3_get: 0.0004e-3,
        sqs_request: 0.40e-6,
    };
}

/// How a process prices the AWS usage of the work it runs: at `prices`, its Lambda time at
/// `lambda_memory_gb`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AwsCosting {
    pub prices: AwsPrices,
    pub lambda_memory_gb: f64,
}

impl AwsUsage {
    /// The usage priced at `prices`, with what each part costs (name, dollars), largest first.
    pub fn priced(&self, prices: &AwsPrices) -> Vec<(&'static str, f64)> {
        let mut parts = vec![
            ("API Gateway", self.api_requests * prices.api_request),
            ("Lambda requests", self.lambda_requests * prices.lambda_request),
            ("Lambda duration", self.lambda_gb_seconds * prices.lambda_gb_second),
            ("Step Functions", self.state_transitions * prices.state_transition),
            ("DynamoDB writes", self.dynamodb_write_units * prices.dynamodb_write_unit),
            ("DynamoDB reads", self.dynamodb_read_units * prices.dynamodb_read_unit),
            ("S3", self.s3_puts * prices.s3_put + self.s3_gets * prices.s3_get),
            ("SQS", self.sqs_requests * prices.sqs_request),
        ];
        parts.retain(|(_, dollars)| *dollars > 0.0);
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        parts
    }

    /// The whole cost in dollars at `prices`.
    pub fn cost_usd(&self, prices: &AwsPrices) -> f64 {
        self.priced(prices).iter().map(|(_, dollars)| dollars).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_of_each_unit_costs_its_list_price_per_million() {
        let million = |usage: AwsUsage| usage.cost_usd(&AwsPrices::LIST);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(million(AwsUsage { api_requests: 1e6, ..Default::default() }), 1.00));
        assert!(close(million(AwsUsage { state_transitions: 1e6, ..Default::default() }), 25.0));
        assert!(close(million(AwsUsage { dynamodb_write_units: 1e6, ..Default::default() }), 0.625));
        assert!(close(million(AwsUsage { s3_puts: 1e6, s3_gets: 1e6, ..Default::default() }), 5.4));
        assert!(close(million(AwsUsage { lambda_gb_seconds: 1e6, ..Default::default() }), 13.3334));
        let parts = AwsUsage { api_requests: 1.0, state_transitions: 1.0, ..Default::default() }.priced(&AwsPrices::LIST);
        assert_eq!(parts.iter().map(|(name, _)| *name).collect::<Vec<_>>(), ["Step Functions", "API Gateway"], "largest first, unused left out");
    }
}

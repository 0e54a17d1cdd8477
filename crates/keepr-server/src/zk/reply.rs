//! How the tree's answers become ZooKeeper reply bodies.

use keepr_tree::{NodeData, OpResult, ReadResult};
use keepr_wire::multi::{MultiResponse, MultiResult};
use keepr_wire::response::ResponseBody;
use keepr_wire::{
    Create2Response, CreateResponse, ErrorCode, GetChildrenResponse, GetDataResponse, StatResponse,
};

/// The reply body of a successful write.
pub fn write_body(result: &OpResult) -> ResponseBody {
    match result {
        OpResult::Create { path } => ResponseBody::Create(CreateResponse { path: path.clone() }),
        OpResult::Create2 { path, stat } => ResponseBody::Create2(Create2Response {
            path: path.clone(),
            stat: stat.clone(),
        }),
        OpResult::SetData { stat } | OpResult::SetAcl { stat } => {
            ResponseBody::Stat(StatResponse { stat: stat.clone() })
        }
        OpResult::Delete | OpResult::Check | OpResult::Session => ResponseBody::Empty,
        OpResult::Multi(results) => ResponseBody::Multi(MultiResponse {
            results: results.iter().map(multi_write_result).collect(),
        }),
    }
}

fn multi_write_result(r: &Result<OpResult, ErrorCode>) -> MultiResult {
    match r {
        Ok(OpResult::Create { path }) => MultiResult::Create(CreateResponse { path: path.clone() }),
        Ok(OpResult::Create2 { path, stat }) => MultiResult::Create2(Create2Response {
            path: path.clone(),
            stat: stat.clone(),
        }),
        Ok(OpResult::Delete) => MultiResult::Delete,
        Ok(OpResult::SetData { stat }) | Ok(OpResult::SetAcl { stat }) => {
            MultiResult::SetData(StatResponse { stat: stat.clone() })
        }
        Ok(OpResult::Check) => MultiResult::Check,
        // Not produced inside multi; answer as ZooKeeper would answer a broken sub-op.
        Ok(OpResult::Multi(_)) | Ok(OpResult::Session) => {
            MultiResult::Error(ErrorCode::RuntimeInconsistency.code())
        }
        Err(code) => MultiResult::Error(code.code()),
    }
}

/// getData's reply from what the tree read.
pub fn data_body(d: &NodeData<'_>) -> GetDataResponse {
    GetDataResponse {
        data: d.data.map(bytes::Bytes::copy_from_slice),
        stat: d.stat.clone(),
    }
}

/// One multiRead result.
pub fn multi_read_result(r: &Result<ReadResult<'_>, ErrorCode>) -> MultiResult {
    match r {
        Ok(ReadResult::Data(d)) => MultiResult::GetData(data_body(d)),
        Ok(ReadResult::Children(c)) => MultiResult::GetChildren(GetChildrenResponse {
            children: c.iter().map(|s| s.to_string()).collect(),
        }),
        Err(code) => MultiResult::Error(code.code()),
    }
}

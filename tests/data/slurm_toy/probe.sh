# Write what this SLURM job sees (environment and `scontrol show job -d`) to "$1".
{
    echo "SLURM_JOB_ID=${SLURM_JOB_ID-}"
    echo "SLURM_JOB_GPUS=${SLURM_JOB_GPUS-}"
    echo "SLURM_STEP_GPUS=${SLURM_STEP_GPUS-}"
    echo "SLURM_GPUS_ON_NODE=${SLURM_GPUS_ON_NODE-}"
    echo "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-}"
    echo "--- scontrol show job -d ${SLURM_JOB_ID-}"
    scontrol show job -d "${SLURM_JOB_ID}"
} > "$1.tmp"
mv "$1.tmp" "$1"

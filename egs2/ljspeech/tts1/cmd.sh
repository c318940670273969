# How jobs run; every runner takes Kaldi's run.pl calling convention:
#   <cmd> [--gpu N] [--mem M] [--num_threads N] [JOB=1:N] LOG COMMAND...
# - utils/run_local.sh (default): on this machine, JOB=1:N in parallel.
# - utils/slurm.sh: on a Slurm cluster, one `sbatch --wait` per job (extra sbatch options in
#   SLURM_SBATCH_OPTS, e.g. "--partition gpu --account me"):
#     train_cmd="utils/slurm.sh --mem 16G"; cuda_cmd="utils/slurm.sh --mem 32G"; decode_cmd="utils/slurm.sh"
#   Training goes through espnet2.bin.launch, which adds --gpu N (and, with --num_nodes N > 1,
#   --num_nodes N, running `mpirun -np N` inside one multi-node job).
# - Kaldi/ESPnet's own runners also fit: copy utils/{queue.pl,slurm.pl} and conf/{queue,slurm}.conf
#   from an ESPnet checkout, e.g. train_cmd="utils/slurm.pl --config conf/slurm.conf". With slurm.pl,
#   espnet2.bin.launch starts one srun task per node for --num_nodes N.
train_cmd="utils/run_local.sh"
cuda_cmd="utils/run_local.sh"
decode_cmd="utils/run_local.sh"

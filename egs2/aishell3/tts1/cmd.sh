# How jobs run. utils/run_local.sh runs them on this machine (JOB=1:N in parallel).
# On a cluster, point these at Kaldi/ESPnet's job scripts from an ESPnet checkout
# (copy egs2/TEMPLATE/tts1/utils/{slurm.pl,queue.pl} and conf/slurm.conf), e.g.
#   train_cmd="utils/slurm.pl --config conf/slurm.conf"; cuda_cmd="${train_cmd}"
# Multi-node training goes through espnet2.bin.launch: with cuda_cmd=slurm.pl and
# --num_nodes N it starts one srun task per node; with --cmd mpirun it uses MPI.
train_cmd="utils/run_local.sh"
cuda_cmd="utils/run_local.sh"
decode_cmd="utils/run_local.sh"
